//! The NFS data plane's series: calls by program, procedure and status (RFC 1813's names),
//! and the bytes moved. Never labelled with client addresses, paths or share ids.

use metrics::{Unit, counter, describe_counter};

use crate::rpc::CallError;

/// Help texts of this crate's series.
pub fn describe() {
    describe_counter!(
        "shoal_nfs_calls_total",
        "RPC calls answered by the NFS server, by program (nfs, mount, portmap), procedure and status (nfsstat3 / mountstat3 name, GARBAGE_ARGS or PROC_UNAVAIL)"
    );
    describe_counter!(
        "shoal_nfs_call_bytes_total",
        Unit::Bytes,
        "Bytes of RPC call records received by the NFS server"
    );
    describe_counter!(
        "shoal_nfs_read_bytes_total",
        Unit::Bytes,
        "File bytes NFS READ returned"
    );
    describe_counter!(
        "shoal_nfs_write_bytes_total",
        Unit::Bytes,
        "File bytes NFS WRITE stored"
    );
}

const NFS_PROCEDURES: [&str; 22] = [
    "NULL",
    "GETATTR",
    "SETATTR",
    "LOOKUP",
    "ACCESS",
    "READLINK",
    "READ",
    "WRITE",
    "CREATE",
    "MKDIR",
    "SYMLINK",
    "MKNOD",
    "REMOVE",
    "RMDIR",
    "RENAME",
    "LINK",
    "READDIR",
    "READDIRPLUS",
    "FSSTAT",
    "FSINFO",
    "PATHCONF",
    "COMMIT",
];
const MOUNT_PROCEDURES: [&str; 6] = ["NULL", "MNT", "DUMP", "UMNT", "UMNTALL", "EXPORT"];
const PORTMAP_PROCEDURES: [&str; 6] = ["NULL", "SET", "UNSET", "GETPORT", "DUMP", "CALLIT"];

/// The name of an `nfsstat3` (and, for the codes they share, `mountstat3`).
fn status_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "PERM",
        2 => "NOENT",
        5 => "IO",
        6 => "NXIO",
        13 => "ACCES",
        17 => "EXIST",
        18 => "XDEV",
        19 => "NODEV",
        20 => "NOTDIR",
        21 => "ISDIR",
        22 => "INVAL",
        27 => "FBIG",
        28 => "NOSPC",
        30 => "ROFS",
        31 => "MLINK",
        63 => "NAMETOOLONG",
        66 => "NOTEMPTY",
        69 => "DQUOT",
        70 => "STALE",
        71 => "REMOTE",
        10001 => "BADHANDLE",
        10002 => "NOT_SYNC",
        10003 => "BAD_COOKIE",
        10004 => "NOTSUPP",
        10005 => "TOOSMALL",
        10006 => "SERVERFAULT",
        10007 => "BADTYPE",
        10008 => "JUKEBOX",
        _ => "other",
    }
}

/// A call was answered; `body` is the reply after the RPC header.
pub(crate) fn call(
    prog: u32,
    proc: u32,
    result: &Result<(), CallError>,
    body: &[u8],
    record: usize,
) {
    let (program, names): (&'static str, &[&'static str]) = match prog {
        nfs3_types::nfs3::PROGRAM => ("nfs", &NFS_PROCEDURES),
        nfs3_types::mount::PROGRAM => ("mount", &MOUNT_PROCEDURES),
        nfs3_types::portmap::PROGRAM => ("portmap", &PORTMAP_PROCEDURES),
        _ => ("other", &[]),
    };
    let procedure = names.get(proc as usize).copied().unwrap_or("other");
    // Results that start with a status: every NFS procedure but NULL, and MOUNT's MNT.
    let has_status = match program {
        "nfs" => proc > 0,
        "mount" => proc == 1,
        _ => false,
    };
    let status = match result {
        Err(CallError::Garbage) => "GARBAGE_ARGS",
        Err(CallError::ProcUnavail) => "PROC_UNAVAIL",
        Ok(()) if has_status => body.get(..4).map_or("other", |b| {
            status_name(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }),
        Ok(()) => "OK",
    };
    counter!("shoal_nfs_calls_total", "program" => program, "procedure" => procedure, "status" => status)
        .increment(1);
    counter!("shoal_nfs_call_bytes_total").increment(record as u64);
}

pub(crate) fn read(bytes: usize) {
    counter!("shoal_nfs_read_bytes_total").increment(bytes as u64);
}

pub(crate) fn written(bytes: usize) {
    counter!("shoal_nfs_write_bytes_total").increment(bytes as u64);
}
