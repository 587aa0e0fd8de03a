//! The NFS file handle: what a client holds to name a file of an export.
//!
//! A handle carries no path. It names the export (the share instance's UUID) and the file by
//! inode number, birth time and inode generation; the server finds the file again through its
//! name table (see `exports.rs`) and accepts the result only if all three are the same, so a
//! handle never yields another file's data (an inode number reused by a new file has a new
//! birth time and a new generation). The export root has its own flag instead of an inode: it
//! always means the root as it is now, which for a published replica is the version
//! `current` points to.
//!
//! The generation is what knfsd puts in its handles for the same reason: ext4, xfs and btrfs
//! give every new inode a new one (`FS_IOC_GETVERSION`). It closes the gap the birth time
//! alone leaves on kernels before 6.13, whose birth times are only as fine as the timer
//! tick: a file deleted and recreated within one tick that also got the freed inode number
//! would have passed. Reading it needs a readable descriptor (not `O_PATH`), so the server
//! takes it from the descriptor cache (`exports.rs`, `FdCache`), which it fills for regular
//! files and directories (symbolic links and other nodes cannot be opened: 0). It is 0 where
//! the file system has none (`ENOTTY`, tmpfs for one) and where the server may not open the
//! file (`EACCES`: a server not running as root and a mode without read permission); a
//! handle with generation 0 is checked by inode and birth time only, and a file whose
//! generation cannot be read now is accepted on those two.
//!
//! Layout of a file handle (44 bytes, big-endian, below the 64-byte NFSv3 limit):
//! ```text
//! 0      format version (2)
//! 1      flags: zero
//! 2..4   zero
//! 4..20  instance UUID
//! 20..28 inode number
//! 28..36 birth time, seconds   (zero when the file system has none)
//! 36..40 birth time, nanoseconds
//! 40..44 inode generation      (zero when unknown, see above)
//! ```
//! A root handle (40 bytes) is what format 1 issued, unchanged, so that clients mounted
//! before an upgrade keep their mount: format version 1, flag bit 0 set, the instance UUID,
//! zeros. A format-1 file handle (40 bytes, before the generation) is answered
//! `NFS3ERR_STALE`, as it would be after any restart: the name table that resolved it is gone.

/// Length of the file handles this server issues.
pub(crate) const HANDLE_LEN: usize = 44;
const _: () = assert!(HANDLE_LEN <= 64, "NFS3_FHSIZE is 64 bytes");
/// Length of root handles (and of format-1 file handles).
const ROOT_LEN: usize = 40;
const FORMAT_ROOT: u8 = 1;
const FORMAT_FILE: u8 = 2;
const FLAG_ROOT: u8 = 1;

/// A birth time as statx reports it; `(0, 0)` when the file system does not record one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Btime {
    pub sec: i64,
    pub nsec: u32,
}

/// A decoded file handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileHandle {
    /// The share instance's UUID (bytes).
    pub instance: [u8; 16],
    /// The export root (the other fields are then zero and ignored).
    pub root: bool,
    pub ino: u64,
    pub btime: Btime,
    /// The inode generation; 0 when unknown (see the module documentation).
    pub generation: u32,
}

/// Why a handle is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadHandle {
    /// Not a handle this server issues (`NFS3ERR_BADHANDLE`).
    Malformed,
    /// A format-1 file handle: it named a file before an upgrade (`NFS3ERR_STALE`).
    Outdated,
}

impl FileHandle {
    /// The handle of the export root of `instance`.
    pub(crate) fn root(instance: [u8; 16]) -> FileHandle {
        FileHandle {
            instance,
            root: true,
            ino: 0,
            btime: Btime::default(),
            generation: 0,
        }
    }

    /// The handle of a file below the root.
    pub(crate) fn file(instance: [u8; 16], ino: u64, btime: Btime, generation: u32) -> FileHandle {
        FileHandle {
            instance,
            root: false,
            ino,
            btime,
            generation,
        }
    }

    /// The bytes of the handle: [`HANDLE_LEN`] for a file, fewer for the root.
    pub(crate) fn encode(&self) -> Vec<u8> {
        if self.root {
            let mut out = vec![0u8; ROOT_LEN];
            out[0] = FORMAT_ROOT;
            out[1] = FLAG_ROOT;
            out[4..20].copy_from_slice(&self.instance);
            return out;
        }
        let mut out = vec![0u8; HANDLE_LEN];
        out[0] = FORMAT_FILE;
        out[4..20].copy_from_slice(&self.instance);
        out[20..28].copy_from_slice(&self.ino.to_be_bytes());
        out[28..36].copy_from_slice(&self.btime.sec.to_be_bytes());
        out[36..40].copy_from_slice(&self.btime.nsec.to_be_bytes());
        out[40..44].copy_from_slice(&self.generation.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<FileHandle, BadHandle> {
        let malformed = |_| BadHandle::Malformed;
        let (format, flags) = match bytes {
            [format, flags, 0, 0, ..] => (*format, *flags),
            _ => return Err(BadHandle::Malformed),
        };
        let instance: [u8; 16] = bytes
            .get(4..20)
            .ok_or(BadHandle::Malformed)?
            .try_into()
            .map_err(malformed)?;
        match (format, flags, bytes.len()) {
            (FORMAT_ROOT, FLAG_ROOT, ROOT_LEN) if bytes[20..].iter().all(|b| *b == 0) => {
                Ok(FileHandle::root(instance))
            }
            (FORMAT_ROOT, 0, ROOT_LEN) => Err(BadHandle::Outdated),
            (FORMAT_FILE, 0, HANDLE_LEN) => {
                let word = |range: std::ops::Range<usize>| -> Result<[u8; 8], BadHandle> {
                    bytes[range].try_into().map_err(malformed)
                };
                let half = |range: std::ops::Range<usize>| -> Result<[u8; 4], BadHandle> {
                    bytes[range].try_into().map_err(malformed)
                };
                let nsec = u32::from_be_bytes(half(36..40)?);
                if nsec >= 1_000_000_000 {
                    return Err(BadHandle::Malformed);
                }
                Ok(FileHandle::file(
                    instance,
                    u64::from_be_bytes(word(20..28)?),
                    Btime {
                        sec: i64::from_be_bytes(word(28..36)?),
                        nsec,
                    },
                    u32::from_be_bytes(half(40..44)?),
                ))
            }
            _ => Err(BadHandle::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = *uuid::Uuid::new_v4().as_bytes();
        let root = FileHandle::root(id);
        assert_eq!(root.encode().len(), ROOT_LEN);
        assert_eq!(FileHandle::decode(&root.encode()), Ok(root));
        let file = FileHandle::file(
            id,
            1234567,
            Btime {
                sec: -5,
                nsec: 999_999_999,
            },
            0xdead_beef,
        );
        let bytes = file.encode();
        assert_eq!(bytes.len(), HANDLE_LEN);
        assert_eq!(FileHandle::decode(&bytes), Ok(file));
    }

    #[test]
    fn root_handles_keep_the_format_1_bytes() {
        let id = [7u8; 16];
        let mut format_1 = vec![1u8, 1, 0, 0];
        format_1.extend_from_slice(&id);
        format_1.extend_from_slice(&[0; 20]);
        assert_eq!(FileHandle::root(id).encode(), format_1);
        // a format-1 file handle is stale, not malformed
        let mut old_file = format_1.clone();
        old_file[1] = 0;
        old_file[27] = 42;
        assert_eq!(FileHandle::decode(&old_file), Err(BadHandle::Outdated));
    }

    #[test]
    fn rejects_malformed_handles() {
        let good = FileHandle::file([7; 16], 42, Btime { sec: 1, nsec: 2 }, 3).encode();
        assert_eq!(FileHandle::decode(&[]), Err(BadHandle::Malformed));
        assert_eq!(
            FileHandle::decode(&good[..HANDLE_LEN - 1]),
            Err(BadHandle::Malformed)
        );
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(FileHandle::decode(&long), Err(BadHandle::Malformed));
        for (index, value) in [(0, 3u8), (0, 1), (1, 1), (1, 2), (2, 1), (3, 1), (36, 0xff)] {
            let mut bad = good.clone();
            bad[index] = value;
            assert_eq!(
                FileHandle::decode(&bad),
                Err(BadHandle::Malformed),
                "byte {index}"
            );
        }
        // a root handle with an inode is not one of ours
        let mut bad_root = FileHandle::root([7; 16]).encode();
        bad_root[27] = 1;
        assert_eq!(FileHandle::decode(&bad_root), Err(BadHandle::Malformed));
    }
}
