//! The NFS file handle: what a client holds to name a file of an export.
//!
//! A handle carries no path. It names the export (the share instance's UUID) and the file by
//! inode number and birth time; the server finds the file again through its name table (see
//! `exports.rs`) and accepts the result only if inode AND birth time are the same, so a
//! handle never yields another file's data (an inode number reused by a new file has a new
//! birth time). The export root has its own flag instead of an inode: it always means the
//! root as it is now, which for a published replica is the version `current` points to.
//!
//! Limit: the birth time is only as fine as the file system's clock. Linux 6.13+ stamps
//! ext4/xfs/btrfs/tmpfs files with fine-grained (multigrain) times, so a recreated file
//! always differs; older kernels use the timer tick, and a file deleted and recreated
//! within one tick that also gets the freed inode number would pass the check. Adding the
//! inode generation (`FS_IOC_GETVERSION`, what knfsd uses; it needs a non-`O_PATH`
//! descriptor) to the handle would close that gap.
//!
//! Layout (40 bytes, big-endian, well below the 64-byte NFSv3 limit):
//! ```text
//! 0      format version (1)
//! 1      flags: bit 0 = export root; other bits zero
//! 2..4   zero
//! 4..20  instance UUID
//! 20..28 inode number          (zero for the root)
//! 28..36 birth time, seconds   (zero for the root, or when the file system has none)
//! 36..40 birth time, nanoseconds
//! ```

/// Length of every handle this server issues.
pub(crate) const HANDLE_LEN: usize = 40;
const FORMAT_VERSION: u8 = 1;
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
}

impl FileHandle {
    /// The handle of the export root of `instance`.
    pub(crate) fn root(instance: [u8; 16]) -> FileHandle {
        FileHandle {
            instance,
            root: true,
            ino: 0,
            btime: Btime::default(),
        }
    }

    /// The handle of a file below the root.
    pub(crate) fn file(instance: [u8; 16], ino: u64, btime: Btime) -> FileHandle {
        FileHandle {
            instance,
            root: false,
            ino,
            btime,
        }
    }

    pub(crate) fn encode(&self) -> [u8; HANDLE_LEN] {
        let mut out = [0u8; HANDLE_LEN];
        out[0] = FORMAT_VERSION;
        out[1] = if self.root { FLAG_ROOT } else { 0 };
        out[4..20].copy_from_slice(&self.instance);
        if !self.root {
            out[20..28].copy_from_slice(&self.ino.to_be_bytes());
            out[28..36].copy_from_slice(&self.btime.sec.to_be_bytes());
            out[36..40].copy_from_slice(&self.btime.nsec.to_be_bytes());
        }
        out
    }

    /// `None` for anything this server did not issue in this format (`NFS3ERR_BADHANDLE`).
    pub(crate) fn decode(bytes: &[u8]) -> Option<FileHandle> {
        let bytes: &[u8; HANDLE_LEN] = bytes.try_into().ok()?;
        if bytes[0] != FORMAT_VERSION || bytes[1] & !FLAG_ROOT != 0 || bytes[2..4] != [0, 0] {
            return None;
        }
        let instance: [u8; 16] = bytes[4..20].try_into().ok()?;
        let root = bytes[1] & FLAG_ROOT != 0;
        let ino = u64::from_be_bytes(bytes[20..28].try_into().ok()?);
        let sec = i64::from_be_bytes(bytes[28..36].try_into().ok()?);
        let nsec = u32::from_be_bytes(bytes[36..40].try_into().ok()?);
        if nsec >= 1_000_000_000 || (root && bytes[20..40].iter().any(|b| *b != 0)) {
            return None;
        }
        Some(FileHandle {
            instance,
            root,
            ino,
            btime: Btime { sec, nsec },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = *uuid::Uuid::new_v4().as_bytes();
        let root = FileHandle::root(id);
        assert_eq!(FileHandle::decode(&root.encode()), Some(root));
        let file = FileHandle::file(
            id,
            1234567,
            Btime {
                sec: -5,
                nsec: 999_999_999,
            },
        );
        let bytes = file.encode();
        assert_eq!(bytes.len(), HANDLE_LEN);
        assert_eq!(FileHandle::decode(&bytes), Some(file));
    }

    #[test]
    fn rejects_malformed_handles() {
        let good = FileHandle::file([7; 16], 42, Btime { sec: 1, nsec: 2 }).encode();
        assert!(FileHandle::decode(&[]).is_none());
        assert!(FileHandle::decode(&good[..39]).is_none());
        let mut long = good.to_vec();
        long.push(0);
        assert!(FileHandle::decode(&long).is_none());
        for (index, value) in [(0, 2u8), (1, 2), (2, 1), (3, 1), (36, 0xff)] {
            let mut bad = good;
            bad[index] = value;
            assert!(FileHandle::decode(&bad).is_none(), "byte {index}");
        }
        // a root handle with an inode is not one of ours
        let mut bad_root = FileHandle::root([7; 16]).encode();
        bad_root[27] = 1;
        assert!(FileHandle::decode(&bad_root).is_none());
    }
}
