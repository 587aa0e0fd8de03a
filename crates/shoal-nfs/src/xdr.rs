//! Decoding of call arguments from a received record, bounded by the record.
//!
//! Replies are encoded with `nfs3_types`' `Pack`. Arguments are decoded here instead of with
//! its `Unpack` because that one allocates whatever length a variable-size field announces
//! before reading it (4 GiB for a forged opaque, 16 GiB for a forged gid list), which a
//! client could use to abort the server. Here every length is checked against the bytes
//! left in the record first, and names and write data are borrowed from the record.

use nfs3_types::nfs3::{nfstime3, sattr3, set_atime, set_mtime};

/// The arguments do not decode: answered `GARBAGE_ARGS`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Garbage;

/// A cursor over one record's bytes.
pub(crate) struct Xdr<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Xdr<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Xdr<'a> {
        Xdr { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Garbage> {
        let end = self.pos.checked_add(n).ok_or(Garbage)?;
        let bytes = self.buf.get(self.pos..end).ok_or(Garbage)?;
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Garbage> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes(bytes.try_into().map_err(|_| Garbage)?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Garbage> {
        let bytes = self.take(8)?;
        Ok(u64::from_be_bytes(bytes.try_into().map_err(|_| Garbage)?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, Garbage> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Garbage),
        }
    }

    /// A variable-length opaque of at most `max` bytes (and never more than the record holds).
    pub(crate) fn opaque(&mut self, max: usize) -> Result<&'a [u8], Garbage> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(Garbage);
        }
        let bytes = self.take(len)?;
        self.take((4 - len % 4) % 4)?;
        Ok(bytes)
    }

    pub(crate) fn fixed8(&mut self) -> Result<[u8; 8], Garbage> {
        self.take(8)?.try_into().map_err(|_| Garbage)
    }

    /// A file handle (`nfs_fh3`): its bytes, judged later (`NFS3ERR_BADHANDLE`).
    pub(crate) fn fh(&mut self) -> Result<&'a [u8], Garbage> {
        self.opaque(nfs3_types::nfs3::NFS3_FHSIZE)
    }

    /// A file name or path: bounded by the record only; the procedure judges its length
    /// (`NFS3ERR_NAMETOOLONG` rather than garbage).
    pub(crate) fn name(&mut self) -> Result<&'a [u8], Garbage> {
        self.opaque(usize::MAX)
    }

    /// `diropargs3`: a directory handle and a name.
    pub(crate) fn dirop(&mut self) -> Result<(&'a [u8], &'a [u8]), Garbage> {
        Ok((self.fh()?, self.name()?))
    }

    pub(crate) fn time(&mut self) -> Result<nfstime3, Garbage> {
        Ok(nfstime3 {
            seconds: self.u32()?,
            nseconds: self.u32()?,
        })
    }

    pub(crate) fn sattr3(&mut self) -> Result<sattr3, Garbage> {
        use nfs3_types::nfs3::Nfs3Option;
        fn opt<T>(
            x: &mut Xdr<'_>,
            f: impl Fn(&mut Xdr<'_>) -> Result<T, Garbage>,
        ) -> Result<Nfs3Option<T>, Garbage>
        where
            T: nfs3_types::xdr_codec::Pack + nfs3_types::xdr_codec::Unpack,
        {
            Ok(if x.bool()? {
                Nfs3Option::Some(f(x)?)
            } else {
                Nfs3Option::None
            })
        }
        let mode = opt(self, |x| x.u32())?;
        let uid = opt(self, |x| x.u32())?;
        let gid = opt(self, |x| x.u32())?;
        let size = opt(self, |x| x.u64())?;
        let atime = match self.u32()? {
            0 => set_atime::DONT_CHANGE,
            1 => set_atime::SET_TO_SERVER_TIME,
            2 => set_atime::SET_TO_CLIENT_TIME(self.time()?),
            _ => return Err(Garbage),
        };
        let mtime = match self.u32()? {
            0 => set_mtime::DONT_CHANGE,
            1 => set_mtime::SET_TO_SERVER_TIME,
            2 => set_mtime::SET_TO_CLIENT_TIME(self.time()?),
            _ => return Err(Garbage),
        };
        Ok(sattr3 {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfs3_types::nfs3::{Nfs3Option, SETATTR3args, WRITE3args, diropargs3, nfs_fh3, stable_how};
    use nfs3_types::xdr_codec::{Opaque, Pack};

    fn packed(value: &impl Pack) -> Vec<u8> {
        let mut out = Vec::new();
        value.pack(&mut out).unwrap();
        out
    }

    #[test]
    fn decodes_what_nfs3_types_encodes() {
        let args = SETATTR3args {
            object: nfs_fh3 {
                data: Opaque::owned(vec![9; 40]),
            },
            new_attributes: sattr3 {
                mode: Nfs3Option::Some(0o644),
                uid: Nfs3Option::None,
                gid: Nfs3Option::Some(5),
                size: Nfs3Option::Some(1 << 40),
                atime: set_atime::SET_TO_SERVER_TIME,
                mtime: set_mtime::SET_TO_CLIENT_TIME(nfstime3 {
                    seconds: 7,
                    nseconds: 8,
                }),
            },
            guard: Nfs3Option::Some(nfstime3 {
                seconds: 1,
                nseconds: 2,
            }),
        };
        let bytes = packed(&args);
        let mut x = Xdr::new(&bytes);
        assert_eq!(x.fh().unwrap(), &[9; 40][..]);
        let attrs = x.sattr3().unwrap();
        assert_eq!(attrs.mode, Nfs3Option::Some(0o644));
        assert_eq!(attrs.uid, Nfs3Option::None);
        assert_eq!(attrs.gid, Nfs3Option::Some(5));
        assert_eq!(attrs.size, Nfs3Option::Some(1 << 40));
        assert!(matches!(attrs.atime, set_atime::SET_TO_SERVER_TIME));
        assert!(matches!(
            attrs.mtime,
            set_mtime::SET_TO_CLIENT_TIME(nfstime3 {
                seconds: 7,
                nseconds: 8
            })
        ));
        assert!(x.bool().unwrap());
        assert_eq!(x.time().unwrap().nseconds, 2);
        assert_eq!(x.position(), bytes.len());

        let write = WRITE3args {
            file: nfs_fh3 {
                data: Opaque::owned(vec![1; 3]),
            },
            offset: 77,
            count: 5,
            stable: stable_how::FILE_SYNC,
            data: Opaque::borrowed(b"hello"),
        };
        let bytes = packed(&write);
        let mut x = Xdr::new(&bytes);
        assert_eq!(x.fh().unwrap(), &[1, 1, 1][..]);
        assert_eq!(x.u64().unwrap(), 77);
        assert_eq!(x.u32().unwrap(), 5);
        assert_eq!(x.u32().unwrap(), 2);
        assert_eq!(x.opaque(usize::MAX).unwrap(), b"hello");
        assert_eq!(x.position(), bytes.len());

        let dirop = diropargs3 {
            dir: nfs_fh3::default(),
            name: b"name".as_slice().into(),
        };
        let bytes = packed(&dirop);
        assert_eq!(Xdr::new(&bytes).dirop().unwrap(), (&[][..], &b"name"[..]));
    }

    #[test]
    fn forged_lengths_are_garbage_not_allocations() {
        // an opaque announcing 4 GiB in a 12-byte record
        let mut bytes = u32::MAX.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert_eq!(Xdr::new(&bytes).name(), Err(Garbage));
        // a handle longer than 64 bytes
        let mut bytes = 65u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 68]);
        assert_eq!(Xdr::new(&bytes).fh(), Err(Garbage));
        // truncated
        assert_eq!(Xdr::new(&[0, 0, 0]).u32(), Err(Garbage));
        assert_eq!(Xdr::new(&[0, 0, 0, 2]).bool(), Err(Garbage));
        // missing padding
        assert_eq!(Xdr::new(&[0, 0, 0, 1, b'a']).name(), Err(Garbage));
    }
}
