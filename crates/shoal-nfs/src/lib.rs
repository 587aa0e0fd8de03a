//! An embedded NFSv3 + MOUNT server that serves share instances of the `local` back end,
//! with per-client-address access rules checked on every call.
//!
//! # Why our own server
//! The NFSv3 server crates we evaluated do not pass the client's address to the file
//! system, and their handle schemes (a u64 file id) cannot name an export. This crate
//! builds on `nfs3_types` (XDR types of RPC, MOUNT, NFSv3 and portmap) and writes the
//! server itself: `rpc` (TCP, record marking, dispatch), `mount` (MOUNT v3, portmap),
//! `nfs` (the 22 NFSv3 procedures), `fs` (the system calls), `exports` (the registry).
//!
//! # Exports
//! The driver registers each share instance with [`Exports::export`]; it is served at
//! `/shares/<instance id>` on one TCP port for MOUNT, NFS and portmap GETPORT (a MOUNT of
//! `/shares/<instance id>/a/b` gives the handle of that directory, see `mount.rs`). The root is
//! either a directory or a published replica (`current -> v<N>`, re-read on every call).
//! Rules, quota, read-only flag and quiesce state can change at any time and apply to
//! connected clients at their next call.
//!
//! # File handles
//! A handle holds the instance UUID, the inode number, the birth time and the inode
//! generation of the file (see `handle.rs`); the root has a flag of its own. An in-memory name table (inode -> parent
//! and name, learned from LOOKUP, CREATE, READDIRPLUS, ...) turns a handle back into a
//! path, which is opened below the root with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`; the file found must have the same inode, birth time and
//! generation, else the call gets `NFS3ERR_STALE`. So a handle never yields another file's data, and after a
//! restart (table lost) clients get STALE for everything but the root and look names up
//! again. The server never follows a symbolic link itself, and ".." of the root is the root.
//!
//! # Access and security model
//! - Access is decided by the client's IP address (the TCP peer) against the export's
//!   rules, on every call: the highest matching level wins, a read-only export caps it to
//!   read-only; no match is `MNT3ERR_ACCES` / `NFS3ERR_ACCES`, a write at read-only
//!   `NFS3ERR_ROFS`.
//! - AUTH_NONE and AUTH_UNIX are accepted; the AUTH_UNIX uid/gid are NOT used. The server
//!   runs as one OS user and every client acts as that user, whatever the mode bits say
//!   (like knfsd's `all_squash`); ownership cannot be changed (`NFS3ERR_PERM`).
//! - The client's source port need not be privileged (like knfsd's `insecure`).
//! - Not served: NLM locking (clients must mount with `nolock`), NFSv4, ACLs, Kerberos
//!   (RPCSEC_GSS), device/fifo/socket nodes, NFS over UDP.
//!
//! # Quota
//! Usage is the sum of the sizes of the regular files of the tree (hard links counted
//! once), counted by a walk when the export is created and kept current by the server.
//! Growth (an extending WRITE, a truncate up) is reserved with one atomic compare-and-swap
//! before any data is written: a call that would pass the quota gets `NFS3ERR_DQUOT` and
//! changes nothing, and concurrent writers cannot overshoot together.
//!
//! # Quiesce and durability
//! A quiesced export answers modifying calls with `NFS3ERR_JUKEBOX` (the client retries);
//! [`Exports::set_quiesced`] returns once the modifying calls in progress have finished.
//! UNSTABLE writes are acknowledged after `pwrite`, stable ones after `fsync`; COMMIT is
//! an `fsync`; the write verifier changes with every server start.

mod access;
mod exports;
mod fs;
mod handle;
pub mod metrics;
mod mount;
mod nfs;
mod rpc;
mod xdr;

pub use access::{AccessLevel, ClientRule};
pub use exports::{
    Change, ChangeKind, ChangeObserver, ExportError, ExportRoot, ExportSpec, Exports,
};
pub use rpc::{NfsError, NfsServer};
